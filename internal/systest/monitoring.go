package systest

import "context"

func (e *env) monitoring(ctx context.Context, sr *ScenarioReport) {}
