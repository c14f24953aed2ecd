package site

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Procedures for a stack whose app hosts are an AWS Auto Scaling group:
// its instances are not pushed to one by one, they boot from the launch
// template, whose user data is the template host's cloud-init.

// asgNames reads the group's and the launch template's names from the
// rendered AWS CLI inputs.
func asgNames(sc *stackCtx) (group, template string) {
	group, template = sc.s.Name, sc.s.Name
	if f, ok := sc.stackFile("aws/autoscaling-group.json"); ok {
		var g struct{ AutoScalingGroupName string }
		if json.Unmarshal(f.Content, &g) == nil && g.AutoScalingGroupName != "" {
			group = g.AutoScalingGroupName
		}
	}
	if f, ok := sc.stackFile("aws/launch-template.json"); ok {
		var t struct{ LaunchTemplateName string }
		if json.Unmarshal(f.Content, &t) == nil && t.LaunchTemplateName != "" {
			template = t.LaunchTemplateName
		}
	}
	return group, template
}

func asgFile(sc *stackCtx, name string) string { return "out/" + sc.s.Name + "/aws/" + name }

func asgDeploy(d *doc, sc *stackCtx) {
	s := sc.s
	group, tmpl := asgNames(sc)
	d.p(hf("The app instances of %s boot from the launch template %s; its user data is the cloud-init of the template host. A change reaches them as a new template version and an instance refresh.", code(group), code(tmpl)))
	d.step("Edit the stack, check it, render and review.", "hacompile vet "+stackFileArg(s), "hacompile build", "git diff -- out/"+s.Name+"/")
	d.step("Commit the stack and its output together.", "git add "+stackFileArg(s)+" out/", "git commit")
	d.step("Create a new launch template version from the rendered input and make it the default the group launches.",
		"aws ec2 create-launch-template-version --cli-input-json file://"+asgFile(sc, "launch-template.json"),
		"aws ec2 modify-launch-template --launch-template-name "+tmpl+" --default-version <new-version-number>")
	d.step("Replace the instances, keeping most of them in service.",
		"aws autoscaling start-instance-refresh --auto-scaling-group-name "+group+` --preferences '{"MinHealthyPercentage": 90, "InstanceWarmup": 120}'`,
		"aws autoscaling describe-instance-refreshes --auto-scaling-group-name "+group)
	d.step("Check the site through the load balancer.", "curl -fsS -o /dev/null -w '%{http_code}\\n' "+healthURL(s))
}

func asgRollback(d *doc, sc *stackCtx) {
	group, tmpl := asgNames(sc)
	d.step("While a refresh runs, roll it back: the group returns to the instances of the previous version.",
		"aws autoscaling rollback-instance-refresh --auto-scaling-group-name "+group)
	d.step("After it finished, make the previous version the default again and refresh.",
		"aws ec2 describe-launch-template-versions --launch-template-name "+tmpl+" --query 'LaunchTemplateVersions[].[VersionNumber,VersionDescription]'",
		"aws ec2 modify-launch-template --launch-template-name "+tmpl+" --default-version <previous-version-number>",
		"aws autoscaling start-instance-refresh --auto-scaling-group-name "+group)
	d.step("Bring git back in line, or the next deploy re-applies the change.", "git revert <commit>", "hacompile build", "git push")
}

func asgScale(d *doc, sc *stackCtx, delta int) {
	sg := sc.s.Scaling
	group, _ := asgNames(sc)
	desired := max(sg.Desired, sg.Min)
	want := desired + delta
	d.p(hf("App instances come and go with the Auto Scaling group %s (min %d, max %d, desired %d); there is no host to add to the stack.", code(group), sg.Min, sg.Max, desired))
	if want < sg.Min || want > sg.Max {
		d.step(hf("Desired %d is outside min %d – max %d: change %s in %s, build and commit first, then apply the new bounds.", want, sg.Min, sg.Max, code("scaling"), code(sc.s.Source)),
			"hacompile build",
			fmt.Sprintf("aws autoscaling update-auto-scaling-group --auto-scaling-group-name %s --min-size %d --max-size %d", group, min(sg.Min, want), max(sg.Max, want)))
	}
	d.step(hf("Set the desired capacity. New instances boot from the launch template and join the target group once healthy; removed ones are deregistered first (the target group's deregistration delay drains them)."),
		"aws autoscaling set-desired-capacity --auto-scaling-group-name "+group+" --desired-capacity "+strconv.Itoa(want))
	d.step(hf("Record it in the stack (%s) so the next rendered group input agrees, build and commit.", code("scaling.desired: "+strconv.Itoa(want))), "hacompile build", "git add "+stackFileArg(sc.s)+" out/", "git commit")
}

func asgDrain(d *doc, sc *stackCtx) {
	group, _ := asgNames(sc)
	d.step("Move the instance to Standby: the group deregisters it from the target group (draining its requests) and does not replace it.",
		"aws autoscaling enter-standby --auto-scaling-group-name "+group+" --instance-ids <instance-id> --should-decrement-desired-capacity")
	d.step("Bring it back when done.", "aws autoscaling exit-standby --auto-scaling-group-name "+group+" --instance-ids <instance-id>")
}
