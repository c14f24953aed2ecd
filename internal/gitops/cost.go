package gitops

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/site"
)

// CostChange is a stack's monthly cost estimate before and after the
// change, from the price table the runbook's cost page uses (dated
// PricesAsOf): its machines and its cloud load balancer at list prices.
// Before or After is nil where the stack does not exist on that side.
type CostChange struct {
	Stack  string     `json:"stack"`
	Before *StackCost `json:"before"`
	After  *StackCost `json:"after"`
	// DeltaCents is After − Before in US cents (a missing side counts
	// as 0); Delta says it as "+$24.00".
	DeltaCents int64  `json:"delta_cents"`
	Delta      string `json:"delta"`
}

// StackCost is one side's estimate.
type StackCost struct {
	// Cents is the monthly total in US cents; Monthly says it as
	// "$1,234.56".
	Cents   int64  `json:"cents"`
	Monthly string `json:"monthly"`
	// Unpriced counts machines whose size the price table lacks: they
	// are not in the total.
	Unpriced int `json:"unpriced"`
}

// Changed reports whether the estimate moves.
func (c CostChange) Changed() bool {
	if c.Before == nil || c.After == nil {
		return c.Before != c.After
	}
	return *c.Before != *c.After
}

// costChanges estimates every stack whose provider has a price list
// (DigitalOcean, AWS) on either side, sorted by stack.
func costChanges(base, head *compile.Result) []CostChange {
	costs := func(res *compile.Result) map[string]StackCost {
		m := map[string]StackCost{}
		for _, r := range res.Rendered {
			if c := site.MonthlyCost(r.Stack); c.Priced {
				m[r.Stack.Name] = StackCost{Cents: c.Cents, Monthly: site.Dollars(c.Cents), Unpriced: c.Unpriced}
			}
		}
		return m
	}
	a, b := costs(base), costs(head)
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	out := []CostChange{}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		c := CostChange{Stack: n}
		if x, ok := a[n]; ok {
			c.Before = &x
			c.DeltaCents -= x.Cents
		}
		if x, ok := b[n]; ok {
			c.After = &x
			c.DeltaCents += x.Cents
		}
		c.Delta = signedDollars(c.DeltaCents)
		out = append(out, c)
	}
	return out
}

func signedDollars(cents int64) string {
	if cents < 0 {
		return "−" + site.Dollars(-cents)
	}
	return "+" + site.Dollars(cents)
}

// costWords says "$96.00 → $120.00 a month (+$24.00)"; arrow and minus
// are the glyphs of the output (ASCII on a terminal).
func costWords(c CostChange, arrow, minus string) string {
	side := func(s *StackCost) string {
		if s == nil {
			return "none"
		}
		w := s.Monthly
		if s.Unpriced > 0 {
			w += fmt.Sprintf(" (+ %d %s not in the price table)", s.Unpriced, plural(s.Unpriced, "machine", "machines"))
		}
		return w
	}
	return fmt.Sprintf("%s %s %s a month (%s)", side(c.Before), arrow, side(c.After), strings.Replace(c.Delta, "−", minus, 1))
}
