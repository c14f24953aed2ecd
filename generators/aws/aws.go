// Package aws renders the AWS side of a stack with a scaling section
// (seed 002) as inputs of the AWS CLI's --cli-input-json, in
// out/<stack>/aws/:
//
//   - launch-template.json: ec2 create-launch-template. Its UserData is
//     the template host's complete cloud-init document, so every instance
//     boots into exactly what out/ holds for that host; gzip-compressed
//     (cloud-init unpacks it) when it would exceed EC2's 16 KiB limit.
//   - autoscaling-group.json: autoscaling create-auto-scaling-group, with
//     the mixed Spot/On-Demand instances policy of the stack.
//   - target-group.json: elbv2 create-target-group, health-checking the
//     instances the way balancer.health says.
//   - cloudwatch-alarms.json: a list of cloudwatch put-metric-alarm
//     inputs (one call each) from the monitoring thresholds.
//
// It is an Assembler because the user data is cloud-init's document for
// the template host, built from the files the generators rendered for it;
// assemblers see only generators' files, so it calls cloudinit.Document
// itself rather than reading the cloud-init assembler's output.
package aws

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the AWS assembler.
type Gen struct{}

var _ artifact.Assembler = Gen{}

// Kind implements artifact.Assembler.
func (Gen) Kind() string { return "aws" }

// Paths of the rendered files beside hosts/ in out/<stack>/.
const (
	LaunchTemplatePath = "aws/launch-template.json"
	GroupPath          = "aws/autoscaling-group.json"
	TargetGroupPath    = "aws/target-group.json"
	AlarmsPath         = "aws/cloudwatch-alarms.json"
)

// MaxUserData is EC2's limit on user data before base64 encoding.
const MaxUserData = 16384

// Assemble implements artifact.Assembler.
func (Gen) Assemble(s *schema.Stack, opt artifact.Options, files []artifact.File, gens []artifact.Generator) ([]artifact.File, error) {
	if s.Provider != "aws" || s.Scaling == nil {
		return nil, nil
	}
	h := s.ScalingTemplateHost()
	if h == nil || !h.Has("app") {
		return nil, artifact.Errorf("scaling.template_host", "want a host with the app role for the launch template")
	}
	if sc := s.Scaling; sc.SpotInstancePools > 0 && sc.SpotAllocationStrategy != "lowest-price" {
		return nil, artifact.Errorf("scaling.spot_instance_pools", "is only for spot_allocation_strategy \"lowest-price\" (Spot spread over that many of the cheapest pools), and the strategy is %q: remove it", sc.SpotAllocationStrategy)
	}
	var hostFiles []artifact.File
	for _, f := range files {
		if f.Host == h.Name {
			hostFiles = append(hostFiles, f)
		}
	}
	doc, err := cloudinit.Document(s, h, hostFiles, gens)
	if err != nil {
		return nil, fmt.Errorf("user data: %w", err)
	}
	userData, err := UserData(doc)
	if err != nil {
		return nil, err
	}
	tg, err := TargetGroup(s)
	if err != nil {
		return nil, err
	}
	var out []artifact.File
	for _, f := range []struct {
		path string
		v    any
	}{
		{LaunchTemplatePath, LaunchTemplate(s, userData)},
		{GroupPath, Group(s)},
		{TargetGroupPath, tg},
		{AlarmsPath, Alarms(s)},
	} {
		b, err := artifact.JSON(f.v)
		if err != nil {
			return nil, err
		}
		out = append(out, artifact.File{Path: f.path, Content: b, Mode: 0o644})
	}
	return out, nil
}

// UserData encodes a cloud-init document for EC2: base64, of the gzip of
// the document when the document alone is over MaxUserData. The gzip
// header carries no name or time, so the bytes depend on doc alone.
func UserData(doc []byte) (string, error) {
	raw := doc
	if len(doc) > MaxUserData {
		var b bytes.Buffer
		zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if err != nil {
			return "", err
		}
		if _, err := zw.Write(doc); err != nil {
			return "", err
		}
		if err := zw.Close(); err != nil {
			return "", err
		}
		raw = b.Bytes()
		if len(raw) > MaxUserData {
			return "", fmt.Errorf("user data: the template host's cloud-init is %d bytes, %d gzipped, above EC2's %d", len(doc), len(raw), MaxUserData)
		}
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// Tag is an EC2 or Auto Scaling tag.
type Tag struct {
	Key               string `json:"Key"`
	Value             string `json:"Value"`
	PropagateAtLaunch *bool  `json:"PropagateAtLaunch,omitempty"`
}

// LaunchTemplateInput is ec2 create-launch-template's input.
type LaunchTemplateInput struct {
	LaunchTemplateName string             `json:"LaunchTemplateName"`
	VersionDescription string             `json:"VersionDescription"`
	LaunchTemplateData LaunchTemplateData `json:"LaunchTemplateData"`
}

// LaunchTemplateData is EC2's RequestLaunchTemplateData.
type LaunchTemplateData struct {
	ImageID            string              `json:"ImageId"`
	InstanceType       string              `json:"InstanceType"`
	KeyName            string              `json:"KeyName,omitempty"`
	IamInstanceProfile *IamInstanceProfile `json:"IamInstanceProfile,omitempty"`
	SecurityGroupIDs   []string            `json:"SecurityGroupIds"`
	Monitoring         Monitoring          `json:"Monitoring"`
	MetadataOptions    MetadataOptions     `json:"MetadataOptions"`
	TagSpecifications  []TagSpecification  `json:"TagSpecifications"`
	UserData           string              `json:"UserData"`
}

// IamInstanceProfile names the instances' role.
type IamInstanceProfile struct {
	Name string `json:"Name"`
}

// Monitoring turns on 1-minute CloudWatch metrics, which the alarms use.
type Monitoring struct {
	Enabled bool `json:"Enabled"`
}

// MetadataOptions require IMDSv2 tokens.
type MetadataOptions struct {
	HTTPTokens              string `json:"HttpTokens"`
	HTTPEndpoint            string `json:"HttpEndpoint"`
	HTTPPutResponseHopLimit int    `json:"HttpPutResponseHopLimit"`
}

// TagSpecification tags what an instance launch creates.
type TagSpecification struct {
	ResourceType string `json:"ResourceType"`
	Tags         []Tag  `json:"Tags"`
}

// Name is the launch template's and the group's name.
func Name(s *schema.Stack) string { return s.Name }

// LaunchTemplate returns the launch template input.
func LaunchTemplate(s *schema.Stack, userData string) LaunchTemplateInput {
	sc := s.Scaling
	d := LaunchTemplateData{
		ImageID:          sc.Image,
		InstanceType:     sc.InstanceTypes[0],
		KeyName:          sc.KeyName,
		SecurityGroupIDs: sc.SecurityGroups,
		Monitoring:       Monitoring{Enabled: true},
		// IMDSv2 only: a server-side request forgery cannot read the
		// instance role's credentials with a plain GET.
		MetadataOptions: MetadataOptions{HTTPTokens: "required", HTTPEndpoint: "enabled", HTTPPutResponseHopLimit: 1},
		TagSpecifications: []TagSpecification{
			{ResourceType: "instance", Tags: tags(s)},
			{ResourceType: "volume", Tags: tags(s)},
		},
		UserData: userData,
	}
	if sc.InstanceProfile != "" {
		d.IamInstanceProfile = &IamInstanceProfile{Name: sc.InstanceProfile}
	}
	return LaunchTemplateInput{
		LaunchTemplateName: Name(s),
		VersionDescription: "Rendered by hacompile from " + s.Source,
		LaunchTemplateData: d,
	}
}

func tags(s *schema.Stack) []Tag {
	return []Tag{{Key: "Name", Value: s.Name + "-" + s.ScalingTemplateHost().Name}, {Key: "hacompile:stack", Value: s.Name}}
}

// GroupInput is autoscaling create-auto-scaling-group's input.
type GroupInput struct {
	AutoScalingGroupName   string               `json:"AutoScalingGroupName"`
	MixedInstancesPolicy   MixedInstancesPolicy `json:"MixedInstancesPolicy"`
	MinSize                int                  `json:"MinSize"`
	MaxSize                int                  `json:"MaxSize"`
	DesiredCapacity        *int                 `json:"DesiredCapacity,omitempty"`
	VPCZoneIdentifier      string               `json:"VPCZoneIdentifier"`
	TargetGroupARNs        []string             `json:"TargetGroupARNs,omitempty"`
	HealthCheckType        string               `json:"HealthCheckType"`
	HealthCheckGracePeriod int                  `json:"HealthCheckGracePeriod"`
	CapacityRebalance      bool                 `json:"CapacityRebalance"`
	Tags                   []Tag                `json:"Tags"`
}

// MixedInstancesPolicy mixes Spot and On-Demand over instance types.
type MixedInstancesPolicy struct {
	LaunchTemplate        PolicyLaunchTemplate  `json:"LaunchTemplate"`
	InstancesDistribution InstancesDistribution `json:"InstancesDistribution"`
}

// PolicyLaunchTemplate names the template and the types it may run as.
type PolicyLaunchTemplate struct {
	LaunchTemplateSpecification LaunchTemplateSpecification `json:"LaunchTemplateSpecification"`
	Overrides                   []Override                  `json:"Overrides"`
}

// LaunchTemplateSpecification names a launch template version.
type LaunchTemplateSpecification struct {
	LaunchTemplateName string `json:"LaunchTemplateName"`
	Version            string `json:"Version"`
}

// Override is one instance type the group may launch.
type Override struct {
	InstanceType string `json:"InstanceType"`
}

// InstancesDistribution splits capacity between On-Demand and Spot.
type InstancesDistribution struct {
	OnDemandAllocationStrategy          string `json:"OnDemandAllocationStrategy"`
	OnDemandBaseCapacity                int    `json:"OnDemandBaseCapacity"`
	OnDemandPercentageAboveBaseCapacity int    `json:"OnDemandPercentageAboveBaseCapacity"`
	SpotAllocationStrategy              string `json:"SpotAllocationStrategy"`
	SpotInstancePools                   int    `json:"SpotInstancePools,omitempty"`
	SpotMaxPrice                        string `json:"SpotMaxPrice,omitempty"`
}

// Group returns the Auto Scaling group input.
func Group(s *schema.Stack) GroupInput {
	sc := s.Scaling
	t := true
	g := GroupInput{
		AutoScalingGroupName: Name(s),
		MixedInstancesPolicy: MixedInstancesPolicy{
			LaunchTemplate: PolicyLaunchTemplate{
				// $Default: a new template version reaches the group only
				// once it is made the default, a deliberate step.
				LaunchTemplateSpecification: LaunchTemplateSpecification{LaunchTemplateName: Name(s), Version: "$Default"},
			},
			InstancesDistribution: InstancesDistribution{
				// On-Demand capacity takes the types in the order listed.
				OnDemandAllocationStrategy:          "prioritized",
				OnDemandBaseCapacity:                sc.OnDemandBaseCapacity,
				OnDemandPercentageAboveBaseCapacity: sc.OnDemandPercentAboveBase,
				SpotAllocationStrategy:              sc.SpotAllocationStrategy,
				SpotMaxPrice:                        sc.SpotMaxPrice,
			},
		},
		MinSize:           sc.Min,
		MaxSize:           sc.Max,
		VPCZoneIdentifier: strings.Join(sc.Subnets, ","),
		// ELB: an instance whose target health check fails is replaced,
		// not only one whose EC2 status check fails.
		HealthCheckType:        "ELB",
		HealthCheckGracePeriod: sc.HealthCheckGracePeriod,
		CapacityRebalance:      sc.CapacityRebalance,
		Tags:                   []Tag{{Key: "hacompile:stack", Value: s.Name, PropagateAtLaunch: &t}},
	}
	if sc.SpotAllocationStrategy == "lowest-price" {
		g.MixedInstancesPolicy.InstancesDistribution.SpotInstancePools = sc.SpotInstancePools
	}
	if sc.Desired > 0 {
		d := sc.Desired
		g.DesiredCapacity = &d
	}
	if sc.TargetGroupARN != "" {
		g.TargetGroupARNs = []string{sc.TargetGroupARN}
	} else {
		// Without a target group the ALB cannot tell the group which
		// instances are unhealthy.
		g.HealthCheckType = "EC2"
	}
	for _, it := range sc.InstanceTypes {
		g.MixedInstancesPolicy.LaunchTemplate.Overrides = append(g.MixedInstancesPolicy.LaunchTemplate.Overrides, Override{InstanceType: it})
	}
	return g
}

// TargetGroupInput is elbv2 create-target-group's input.
type TargetGroupInput struct {
	Name                       string  `json:"Name"`
	Protocol                   string  `json:"Protocol"`
	ProtocolVersion            string  `json:"ProtocolVersion"`
	Port                       int     `json:"Port"`
	VpcID                      string  `json:"VpcId"`
	TargetType                 string  `json:"TargetType"`
	HealthCheckEnabled         bool    `json:"HealthCheckEnabled"`
	HealthCheckProtocol        string  `json:"HealthCheckProtocol"`
	HealthCheckPort            string  `json:"HealthCheckPort"`
	HealthCheckPath            string  `json:"HealthCheckPath"`
	HealthCheckIntervalSeconds int     `json:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int     `json:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int     `json:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int     `json:"UnhealthyThresholdCount"`
	Matcher                    Matcher `json:"Matcher"`
}

// Matcher is the status a healthy target answers with.
type Matcher struct {
	HTTPCode string `json:"HttpCode"`
}

// TargetGroupName is the target group's name: the one in
// scaling.target_group_arn, else the stack's (at most 32 characters).
func TargetGroupName(s *schema.Stack) string {
	if arn := s.Scaling.TargetGroupARN; arn != "" {
		parts := strings.Split(arn, "/")
		return parts[len(parts)-2]
	}
	return s.Name[:min(len(s.Name), 32)]
}

// TargetGroup returns the target group input, or why ELB would refuse
// the stack's health check.
func TargetGroup(s *schema.Stack) (TargetGroupInput, error) {
	h := s.Balancer.Health
	timeout, whole := h.Timeout.Seconds()
	if !whole {
		return TargetGroupInput{}, artifact.Errorf("balancer.health.timeout", "%s: an ALB target group takes whole seconds (2–120) for its health check timeout", h.Timeout)
	}
	for _, c := range []struct {
		field     string
		v, lo, hi int
	}{
		{"balancer.health.interval", h.Interval, 5, 300},
		{"balancer.health.timeout", timeout, 2, 120},
		{"balancer.health.rise", h.Rise, 2, 10},
		{"balancer.health.fall", h.Fall, 2, 10},
	} {
		if c.v < c.lo || c.v > c.hi {
			return TargetGroupInput{}, artifact.Errorf(c.field, "%d is outside the %d–%d an ALB target group accepts", c.v, c.lo, c.hi)
		}
	}
	if timeout >= h.Interval {
		return TargetGroupInput{}, artifact.Errorf("balancer.health.timeout", "%d s must be shorter than the interval (%d s) for an ALB target group", timeout, h.Interval)
	}
	return TargetGroupInput{
		Name:     TargetGroupName(s),
		Protocol: "HTTP", ProtocolVersion: "HTTP1",
		// The ALB talks to each instance's nginx, which proxies to the app.
		Port: s.App.HTTPPort, VpcID: s.Scaling.VPC, TargetType: "instance",
		HealthCheckEnabled: true, HealthCheckProtocol: "HTTP", HealthCheckPort: "traffic-port",
		HealthCheckPath:            h.Path,
		HealthCheckIntervalSeconds: h.Interval,
		HealthCheckTimeoutSeconds:  timeout,
		HealthyThresholdCount:      h.Rise,
		UnhealthyThresholdCount:    h.Fall,
		Matcher:                    Matcher{HTTPCode: "200"},
	}, nil
}

// Alarm is cloudwatch put-metric-alarm's input: a single metric
// (Namespace … Statistic) or metric math (Metrics).
type Alarm struct {
	AlarmName          string      `json:"AlarmName"`
	AlarmDescription   string      `json:"AlarmDescription"`
	ActionsEnabled     bool        `json:"ActionsEnabled"`
	AlarmActions       []string    `json:"AlarmActions"`
	OKActions          []string    `json:"OKActions"`
	Namespace          string      `json:"Namespace,omitempty"`
	MetricName         string      `json:"MetricName,omitempty"`
	Dimensions         []Dimension `json:"Dimensions,omitempty"`
	Statistic          string      `json:"Statistic,omitempty"`
	Period             int         `json:"Period,omitempty"`
	Metrics            []Query     `json:"Metrics,omitempty"`
	EvaluationPeriods  int         `json:"EvaluationPeriods"`
	DatapointsToAlarm  int         `json:"DatapointsToAlarm"`
	Threshold          float64     `json:"Threshold"`
	ComparisonOperator string      `json:"ComparisonOperator"`
	TreatMissingData   string      `json:"TreatMissingData"`
}

// Dimension narrows a metric.
type Dimension struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

// Query is one MetricDataQuery of a metric-math alarm.
type Query struct {
	ID         string      `json:"Id"`
	Expression string      `json:"Expression,omitempty"`
	Label      string      `json:"Label,omitempty"`
	MetricStat *MetricStat `json:"MetricStat,omitempty"`
	ReturnData bool        `json:"ReturnData"`
}

// MetricStat is a metric and how to aggregate it.
type MetricStat struct {
	Metric Metric `json:"Metric"`
	Period int    `json:"Period"`
	Stat   string `json:"Stat"`
}

// Metric names a CloudWatch metric.
type Metric struct {
	Namespace  string      `json:"Namespace"`
	MetricName string      `json:"MetricName"`
	Dimensions []Dimension `json:"Dimensions"`
}

// period is the alarms' period: the launch template turns on 1-minute
// metrics, and monitoring.for_minutes counts such periods.
const period = 60

// Alarms returns the CloudWatch alarms: CPU and failed status checks of
// the group's instances and, when the ALB's ARNs are known, unhealthy
// targets and the rate of 5xx answers.
func Alarms(s *schema.Stack) []Alarm {
	m := s.Monitoring
	sc := s.Scaling
	topics := sc.AlarmTopics
	if topics == nil {
		topics = []string{}
	}
	group := []Dimension{{Name: "AutoScalingGroupName", Value: Name(s)}}
	base := func(name, desc string) Alarm {
		return Alarm{AlarmName: s.Name + "-" + name, AlarmDescription: desc, ActionsEnabled: len(topics) > 0,
			AlarmActions: topics, OKActions: topics, EvaluationPeriods: m.ForMinutes, DatapointsToAlarm: m.ForMinutes}
	}
	cpu := base("cpu-high", fmt.Sprintf("Average CPU of the group's instances above %d %% for %d minutes (monitoring.cpu_percent): scale out or find the hot path.", m.CPUPercent, m.ForMinutes))
	cpu.Namespace, cpu.MetricName, cpu.Dimensions, cpu.Statistic, cpu.Period = "AWS/EC2", "CPUUtilization", group, "Average", period
	cpu.Threshold, cpu.ComparisonOperator, cpu.TreatMissingData = float64(m.CPUPercent), "GreaterThanThreshold", "missing"

	status := base("status-check-failed", fmt.Sprintf("An instance of the group failed its EC2 status checks for %d minutes; the group replaces it.", m.ForMinutes))
	status.Namespace, status.MetricName, status.Dimensions, status.Statistic, status.Period = "AWS/EC2", "StatusCheckFailed", group, "Maximum", period
	status.Threshold, status.ComparisonOperator, status.TreatMissingData = 1, "GreaterThanOrEqualToThreshold", "missing"
	alarms := []Alarm{cpu, status}

	if sc.TargetGroupARN == "" || sc.LoadBalancerARN == "" {
		return alarms
	}
	elb := []Dimension{
		{Name: "TargetGroup", Value: sc.TargetGroupARN[strings.LastIndex(sc.TargetGroupARN, ":")+1:]},
		{Name: "LoadBalancer", Value: sc.LoadBalancerARN[strings.Index(sc.LoadBalancerARN, ":loadbalancer/")+len(":loadbalancer/"):]},
	}
	unhealthy := base("unhealthy-targets", fmt.Sprintf("At least one instance failed the ALB health check (%s) for %d minutes.", s.Balancer.Health.Path, m.ForMinutes))
	unhealthy.Namespace, unhealthy.MetricName, unhealthy.Dimensions, unhealthy.Statistic, unhealthy.Period = "AWS/ApplicationELB", "UnHealthyHostCount", elb, "Maximum", period
	unhealthy.Threshold, unhealthy.ComparisonOperator, unhealthy.TreatMissingData = 0, "GreaterThanThreshold", "missing"

	errors := base("5xx-rate", fmt.Sprintf("More than %g %% of requests answered 5xx by the instances for %d minutes (monitoring.error_rate_percent).", m.ErrorRatePercent, m.ForMinutes))
	stat := func(name string) *MetricStat {
		return &MetricStat{Metric: Metric{Namespace: "AWS/ApplicationELB", MetricName: name, Dimensions: elb}, Period: period, Stat: "Sum"}
	}
	errors.Metrics = []Query{
		// No 5xx in a minute publishes no datapoint: FILL counts it as 0.
		{ID: "rate", Expression: "100 * FILL(errors, 0) / requests", Label: "5xx answers, % of requests", ReturnData: true},
		{ID: "errors", MetricStat: stat("HTTPCode_Target_5XX_Count")},
		{ID: "requests", MetricStat: stat("RequestCount")},
	}
	errors.Threshold, errors.ComparisonOperator, errors.TreatMissingData = m.ErrorRatePercent, "GreaterThanThreshold", "notBreaching"
	return append(alarms, unhealthy, errors)
}
