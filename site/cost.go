package site

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// The monthly cost estimate, from the dated price table in prices.go.

type costRow struct {
	Item, Size       string
	Count            int
	Unit, Monthly    string
	Spot             string // AWS only
	Priced           bool
	Note             string
	monthly, spotAmt microUSD
}

type costView struct {
	AsOf     string
	Provider string
	Basis    string
	Rows     []costRow
	Total    string
	Spot     bool
	// SpotTotal is the total with every instance on Spot at the assumed
	// discount.
	SpotTotal    string
	SpotDiscount int
	Excluded     []string
	// Priced: the provider has a price list here.
	Priced bool
	total  microUSD
}

func (m microUSD) String() string {
	cents := (int64(m) + 5_000) / 10_000
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}

func costOf(s *schema.Stack) costView {
	v := costView{AsOf: PricesAsOf, Provider: s.Provider, SpotDiscount: spotDiscountPercent}
	switch s.Provider {
	case "digitalocean":
		v.Basis = "DigitalOcean list prices (the same in every region), per month."
	case "aws":
		v.Basis = fmt.Sprintf("AWS On-Demand list prices for Linux in us-east-1, × %d hours a month; other regions differ.", hoursPerMonth)
		v.Spot = true
	default:
		v.Basis = "The stack's provider is generic: there is no price list for its machines."
	}
	// Hosts grouped by size, in name order of the first host of each.
	type group struct {
		size  string
		hosts []string
	}
	var groups []*group
	tmpl := s.ScalingTemplateHost()
	for _, n := range s.HostNames() {
		h := s.Hosts[n]
		if tmpl != nil && h == tmpl {
			continue // the launch template's host: the group's instances are priced below
		}
		size := h.Size
		if size == "" {
			size = fmt.Sprintf("%d vCPU / %d MB (no size slug)", h.Cores, h.MemoryMB)
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.size == size })
		if i < 0 {
			groups = append(groups, &group{size: size})
			i = len(groups) - 1
		}
		groups[i].hosts = append(groups[i].hosts, n)
	}
	var total, spotTotal microUSD
	for _, g := range groups {
		r := costRow{Item: strings.Join(g.hosts, ", "), Size: g.size, Count: len(g.hosts)}
		switch s.Provider {
		case "digitalocean":
			if p, ok := dropletMonthly[g.size]; ok {
				r.Priced, r.Unit, r.monthly = true, p.String(), p*microUSD(len(g.hosts))
			}
		case "aws":
			if p, ok := ec2Hourly[g.size]; ok {
				unit := p * hoursPerMonth
				r.Priced, r.Unit, r.monthly = true, unit.String(), unit*microUSD(len(g.hosts))
				r.spotAmt = r.monthly * (100 - spotDiscountPercent) / 100
				r.Spot = r.spotAmt.String()
			}
		}
		if r.Priced {
			r.Monthly = r.monthly.String()
			total += r.monthly
			spotTotal += r.spotAmt
		} else {
			r.Unit, r.Monthly, r.Note = "—", "—", "no list price for this size in the table"
		}
		v.Rows = append(v.Rows, r)
	}
	if sg := s.Scaling; sg != nil && tmpl != nil && s.Provider == "aws" {
		rows, t, st := asgCost(sg, tmpl)
		v.Rows = append(v.Rows, rows...)
		total += t
		spotTotal += st
	}
	if s.Balancer.Kind == "cloud" {
		switch s.Provider {
		case "digitalocean":
			units := 1
			if do := s.Balancer.DigitalOcean; do != nil && do.SizeUnit > 0 {
				units = do.SizeUnit
			}
			m := doLoadBalancerMonthly * microUSD(units)
			r := costRow{Item: "Load balancer", Size: plural(units, "node", "nodes"), Count: 1, Unit: m.String(), Monthly: m.String(), Priced: true}
			total += m
			v.Rows = append(v.Rows, r)
		case "aws":
			m := albHourly * hoursPerMonth
			r := costRow{Item: "Application Load Balancer", Size: "fixed hourly charge", Count: 1, Unit: m.String(), Monthly: m.String(), Spot: m.String(), Priced: true, Note: "plus LCUs for traffic, not estimated"}
			total += m
			spotTotal += m
			v.Rows = append(v.Rows, r)
		}
	}
	v.Priced = s.Provider == "digitalocean" || s.Provider == "aws"
	v.Total = total.String()
	v.total = total
	v.SpotTotal = spotTotal.String()
	if s.Provider == "digitalocean" && s.Balancer.Kind != "cloud" && s.Balancer.Failover == "reserved-ip" {
		v.Excluded = append(v.Excluded, "the reserved IP: free while assigned to a Droplet")
	}
	if db := s.Database; db != nil && db.Managed {
		v.Excluded = append(v.Excluded, fmt.Sprintf("the managed %s cluster and its %s: the stack does not state their size", engineName(db.Engine), plural(len(db.Replicas), "replica", "replicas")))
	}
	// A self-hosted cache leaves cache.host empty: it runs on the cache
	// hosts, priced above with the others.
	if c := s.Cache; c != nil && !hostHasAddress(s, s.CacheEndpoint()) {
		v.Excluded = append(v.Excluded, "the "+engineName(c.Engine)+" cache at "+s.CacheEndpoint()+": not a host of the stack")
	}
	if q := s.Queue; q != nil && !hostHasAddress(s, s.QueueEndpoint()) {
		v.Excluded = append(v.Excluded, "the "+engineName(q.Engine)+" broker at "+s.QueueEndpoint()+": not a host of the stack")
	}
	if s.Monitoring.Enabled {
		v.Excluded = append(v.Excluded, "the monitoring host running Prometheus")
	}
	v.Excluded = append(v.Excluded, "bandwidth beyond the included transfer, backups, snapshots, volumes and taxes")
	return v
}

func hostHasAddress(s *schema.Stack, addr string) bool {
	for _, h := range s.Hosts {
		if h.Address == addr {
			return true
		}
	}
	return false
}

// asgCost prices an Auto Scaling group at its desired capacity: the
// On-Demand base, then on_demand_percent_above_base of the rest (rounded
// up) On-Demand and the remainder on Spot, all at the template host's
// instance type.
func asgCost(sg *schema.Scaling, tmpl *schema.Host) (rows []costRow, total, spotTotal microUSD) {
	desired := max(sg.Desired, sg.Min)
	base := min(sg.OnDemandBaseCapacity, desired)
	above := desired - base
	onDemand := base + (above*sg.OnDemandPercentAboveBase+99)/100
	spot := desired - onDemand
	p, ok := ec2Hourly[tmpl.Size]
	item := fmt.Sprintf("Auto Scaling group at desired %d (min %d, max %d)", desired, sg.Min, sg.Max)
	if !ok {
		return []costRow{{Item: item, Size: tmpl.Size, Count: desired, Unit: "—", Monthly: "—", Note: "no list price for this size in the table"}}, 0, 0
	}
	unit := p * hoursPerMonth
	spotUnit := unit * (100 - spotDiscountPercent) / 100
	od := unit * microUSD(onDemand)
	sp := spotUnit * microUSD(spot)
	rows = append(rows,
		costRow{Item: item + ": On-Demand", Size: tmpl.Size, Count: onDemand, Unit: unit.String(), Monthly: od.String(), Spot: od.String(), Priced: true,
			Note: fmt.Sprintf("base %d + %d%% of the %d above it, rounded up", base, sg.OnDemandPercentAboveBase, above)},
		costRow{Item: item + ": Spot", Size: tmpl.Size, Count: spot, Unit: unit.String(), Monthly: (unit * microUSD(spot)).String(), Spot: sp.String(), Priced: true,
			Note: "the Month column prices them On-Demand; the Spot column at the assumed discount. Other instance types of the group: " + strings.Join(sg.InstanceTypes, ", ")},
	)
	return rows, od + unit*microUSD(spot), od + sp
}

// Cost is a stack's monthly estimate from the price table, as its
// runbook page totals it: the machines (an Auto Scaling group at its
// desired capacity, On-Demand) and a cloud load balancer.
type Cost struct {
	// Priced: the stack's provider has a price list in the table.
	Priced bool
	// Cents is the monthly total in US cents.
	Cents int64
	// Unpriced counts the machines whose size has no list price (left
	// out of Cents).
	Unpriced int
}

// MonthlyCost is s's monthly cost estimate; PricesAsOf dates it.
func MonthlyCost(s *schema.Stack) Cost {
	v := costOf(s)
	c := Cost{Priced: v.Priced}
	for _, r := range v.Rows {
		if !r.Priced {
			c.Unpriced += r.Count
		}
	}
	c.Cents = (int64(v.total) + 5_000) / 10_000
	return c
}

// Dollars writes cents as "$1,234.56" ("-$12.00" below zero).
func Dollars(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	whole := fmt.Sprint(cents / 100)
	for i := len(whole) - 3; i > 0; i -= 3 {
		whole = whole[:i] + "," + whole[i:]
	}
	return fmt.Sprintf("%s$%s.%02d", sign, whole, cents%100)
}
