package site

// The price table the cost estimate uses. It is dated and shipped with
// the tool, never fetched: the runbook must build offline and the same
// stack must always give the same page. Prices are published list
// prices in US dollars; update PricesAsOf with every change.

// PricesAsOf is the date the list prices below were read.
const PricesAsOf = "2025-01-01"

// hoursPerMonth is the month AWS and DigitalOcean bill hourly prices by.
const hoursPerMonth = 730

// microUSD is an amount in millionths of a dollar, so sums are exact.
type microUSD int64

const dollar microUSD = 1_000_000

// dropletMonthly is DigitalOcean's monthly list price per Droplet size
// slug (the same in every region). Basic (s-*) and CPU-Optimized
// regular (c-*) Droplets.
var dropletMonthly = map[string]microUSD{
	"s-1vcpu-1gb":  6 * dollar,
	"s-1vcpu-2gb":  12 * dollar,
	"s-2vcpu-2gb":  18 * dollar,
	"s-2vcpu-4gb":  24 * dollar,
	"s-4vcpu-8gb":  48 * dollar,
	"s-8vcpu-16gb": 96 * dollar,
	"c-2":          42 * dollar,
	"c-4":          84 * dollar,
	"c-8":          168 * dollar,
	"c-16":         336 * dollar,
	"c-32":         672 * dollar,
}

// doLoadBalancerMonthly is one DigitalOcean regional load balancer node.
const doLoadBalancerMonthly = 12 * dollar

// ec2Hourly is the AWS EC2 On-Demand list price per hour for Linux in
// us-east-1 (N. Virginia); other regions differ.
var ec2Hourly = map[string]microUSD{
	"t3.micro":   10_400,
	"t3.small":   20_800,
	"t3.medium":  41_600,
	"t3.large":   83_200,
	"m6i.large":  96_000,
	"m6i.xlarge": 192_000,
	"c6i.large":  85_000,
	"c6i.xlarge": 170_000,
}

// albHourly is an Application Load Balancer's fixed hourly price in
// us-east-1; LCUs (traffic) come on top and are not estimated.
const albHourly microUSD = 22_500

// spotDiscountPercent is the discount the Spot column assumes. Spot has
// no list price (it moves with supply, per zone and hour; AWS quotes
// savings of up to 90%), so the column is an illustration and says so.
const spotDiscountPercent = 70
