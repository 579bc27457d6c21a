"""analysis: seed formulas, the closed-form step model, planner, reports and the CLI."""
