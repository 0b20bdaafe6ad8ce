"""Policy as code: a YAML manifest of teams, agents, grants, rules and limits."""
