package aws_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/aws"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// shapes lists, per AWS API structure, the member names the AWS CLI's
// --cli-input-json accepts (from the API references of
// CreateLaunchTemplate, CreateAutoScalingGroup, CreateTargetGroup and
// PutMetricAlarm); a misspelt key would make the CLI refuse the file.
var shapes = map[string][]string{
	"CreateLaunchTemplate":      {"LaunchTemplateName", "VersionDescription", "LaunchTemplateData", "ClientToken", "DryRun", "TagSpecifications"},
	"RequestLaunchTemplateData": {"ImageId", "InstanceType", "KeyName", "IamInstanceProfile", "SecurityGroupIds", "SecurityGroups", "UserData", "Monitoring", "MetadataOptions", "TagSpecifications", "NetworkInterfaces", "BlockDeviceMappings", "EbsOptimized", "InstanceMarketOptions"},
	"CreateAutoScalingGroup":    {"AutoScalingGroupName", "LaunchTemplate", "MixedInstancesPolicy", "MinSize", "MaxSize", "DesiredCapacity", "VPCZoneIdentifier", "TargetGroupARNs", "HealthCheckType", "HealthCheckGracePeriod", "CapacityRebalance", "Tags", "DefaultCooldown", "AvailabilityZones"},
	"InstancesDistribution":     {"OnDemandAllocationStrategy", "OnDemandBaseCapacity", "OnDemandPercentageAboveBaseCapacity", "SpotAllocationStrategy", "SpotInstancePools", "SpotMaxPrice"},
	"CreateTargetGroup":         {"Name", "Protocol", "ProtocolVersion", "Port", "VpcId", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckEnabled", "HealthCheckPath", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount", "UnhealthyThresholdCount", "Matcher", "TargetType", "Tags", "IpAddressType"},
	"PutMetricAlarm":            {"AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "Tags", "ThresholdMetricId"},
}

func keys(t *testing.T, shape string, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: not an object: %v", shape, v)
	}
	for k := range m {
		if !slices.Contains(shapes[shape], k) {
			t.Errorf("%s has no member %q", shape, k)
		}
	}
	return m
}

func rendered(t *testing.T) map[string][]byte {
	t.Helper()
	rs, err := compile.RenderAll(testtool.LoadStacks(t), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, r := range rs {
		for _, f := range r.Files {
			if f.Host == "" {
				out[r.Stack.Name+"/"+f.Path] = f.Content
			}
		}
	}
	return out
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("}\n")) && !bytes.HasSuffix(b, []byte("]\n")) {
		t.Error("JSON does not end with a newline")
	}
	return v
}

// TestExampleStack checks seed 002's files against the AWS shapes and
// the values the stack gives, written out here by hand.
func TestExampleStack(t *testing.T) {
	files := rendered(t)
	for name := range files {
		if strings.Contains(name, "/aws/") && !strings.HasPrefix(name, "aws-spot-asg/") {
			t.Errorf("AWS file %s for a stack without scaling", name)
		}
	}
	lt := keys(t, "CreateLaunchTemplate", decode(t, files["aws-spot-asg/"+aws.LaunchTemplatePath]))
	data := keys(t, "RequestLaunchTemplateData", lt["LaunchTemplateData"])
	want := map[string]any{
		"ImageId": "ami-0abcdef1234567890", "InstanceType": "t3.medium",
		"IamInstanceProfile": map[string]any{"Name": "my-python-app-role"},
		"SecurityGroupIds":   []any{"sg-0123456789abcdef0"},
		"MetadataOptions":    map[string]any{"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1.0},
	}
	for k, v := range want {
		if !reflect.DeepEqual(data[k], v) {
			t.Errorf("LaunchTemplateData.%s = %v, want %v", k, data[k], v)
		}
	}
	// UserData is the template host's cloud-init, byte for byte.
	raw, err := base64.StdEncoding.DecodeString(data["UserData"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(raw, files["aws-spot-asg/cloud-init/app.yaml"]) {
		t.Error("UserData is not out/aws-spot-asg/cloud-init/app.yaml")
	}

	g := keys(t, "CreateAutoScalingGroup", decode(t, files["aws-spot-asg/"+aws.GroupPath]))
	if g["MinSize"] != 2.0 || g["MaxSize"] != 10.0 || g["DesiredCapacity"] != 3.0 || g["HealthCheckType"] != "ELB" ||
		g["VPCZoneIdentifier"] != "subnet-0123456789abcdef0,subnet-0fedcba9876543210" || g["CapacityRebalance"] != true ||
		!reflect.DeepEqual(g["TargetGroupARNs"], []any{"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-python-app-tg/abcdef1234567890"}) {
		t.Errorf("group: %v", g)
	}
	mip := g["MixedInstancesPolicy"].(map[string]any)
	dist := keys(t, "InstancesDistribution", mip["InstancesDistribution"])
	wantDist := map[string]any{"OnDemandAllocationStrategy": "prioritized", "OnDemandBaseCapacity": 1.0,
		"OnDemandPercentageAboveBaseCapacity": 20.0, "SpotAllocationStrategy": "price-capacity-optimized"}
	if !reflect.DeepEqual(dist, wantDist) {
		t.Errorf("InstancesDistribution %v, want %v", dist, wantDist)
	}
	tmpl := mip["LaunchTemplate"].(map[string]any)
	wantTmpl := map[string]any{
		"LaunchTemplateSpecification": map[string]any{"LaunchTemplateName": "aws-spot-asg", "Version": "$Default"},
		"Overrides": []any{map[string]any{"InstanceType": "t3.medium"}, map[string]any{"InstanceType": "t3a.medium"},
			map[string]any{"InstanceType": "m6i.large"}, map[string]any{"InstanceType": "m5.large"}, map[string]any{"InstanceType": "c6i.large"}},
	}
	if !reflect.DeepEqual(tmpl, wantTmpl) {
		t.Errorf("MixedInstancesPolicy.LaunchTemplate %v", tmpl)
	}

	tg := keys(t, "CreateTargetGroup", decode(t, files["aws-spot-asg/"+aws.TargetGroupPath]))
	wantTG := map[string]any{"Name": "my-python-app-tg", "Protocol": "HTTP", "ProtocolVersion": "HTTP1", "Port": 80.0,
		"VpcId": "vpc-0123456789abcdef0", "TargetType": "instance", "HealthCheckEnabled": true, "HealthCheckProtocol": "HTTP",
		"HealthCheckPort": "traffic-port", "HealthCheckPath": "/healthz", "HealthCheckIntervalSeconds": 5.0,
		"HealthCheckTimeoutSeconds": 2.0, "HealthyThresholdCount": 2.0, "UnhealthyThresholdCount": 2.0,
		"Matcher": map[string]any{"HttpCode": "200"}}
	if !reflect.DeepEqual(tg, wantTG) {
		t.Errorf("target group %v\nwant %v", tg, wantTG)
	}

	alarms := decode(t, files["aws-spot-asg/"+aws.AlarmsPath]).([]any)
	var names []string
	for _, a := range alarms {
		m := keys(t, "PutMetricAlarm", a)
		names = append(names, m["AlarmName"].(string))
		if !reflect.DeepEqual(m["AlarmActions"], []any{"arn:aws:sns:us-east-1:123456789012:ops-alerts"}) || m["EvaluationPeriods"] != 5.0 {
			t.Errorf("%s: actions %v, periods %v", m["AlarmName"], m["AlarmActions"], m["EvaluationPeriods"])
		}
		if _, math := m["Metrics"]; math == (m["MetricName"] != nil) {
			t.Errorf("%s: want either one metric or metric math", m["AlarmName"])
		}
		switch m["AlarmName"] {
		case "aws-spot-asg-cpu-high":
			if m["Threshold"] != 80.0 || m["MetricName"] != "CPUUtilization" {
				t.Errorf("cpu alarm %v", m)
			}
		case "aws-spot-asg-5xx-rate":
			if m["Threshold"] != 5.0 {
				t.Errorf("5xx alarm threshold %v", m["Threshold"])
			}
		case "aws-spot-asg-unhealthy-targets":
			dims := []any{map[string]any{"Name": "TargetGroup", "Value": "targetgroup/my-python-app-tg/abcdef1234567890"},
				map[string]any{"Name": "LoadBalancer", "Value": "app/my-python-app-alb/0123456789abcdef"}}
			if !reflect.DeepEqual(m["Dimensions"], dims) {
				t.Errorf("unhealthy-targets dimensions %v", m["Dimensions"])
			}
		}
	}
	if want := []string{"aws-spot-asg-cpu-high", "aws-spot-asg-status-check-failed", "aws-spot-asg-unhealthy-targets", "aws-spot-asg-5xx-rate"}; !slices.Equal(names, want) {
		t.Errorf("alarms %q, want %q", names, want)
	}
}

// TestUserDataGzip: a document over EC2's limit is gzipped and comes
// back whole; the same bytes give the same user data.
func TestUserDataGzip(t *testing.T) {
	doc := bytes.Repeat([]byte("#cloud-config line that repeats\n"), 1000)
	a, err := aws.UserData(doc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := aws.UserData(doc)
	if a != b {
		t.Error("user data is not deterministic")
	}
	raw, _ := base64.StdEncoding.DecodeString(a)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	back, _ := io.ReadAll(zr)
	if !bytes.Equal(back, doc) || len(raw) > aws.MaxUserData {
		t.Errorf("gzip round trip: %d bytes back, %d compressed", len(back), len(raw))
	}
	small, _ := aws.UserData([]byte("#cloud-config\n"))
	if small != base64.StdEncoding.EncodeToString([]byte("#cloud-config\n")) {
		t.Error("a small document was not left as it is")
	}
}
