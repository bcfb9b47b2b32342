"""Live sessions and leak alarms: lifecycle observers and the node's own audit (pure), the
registry every node keeps current in Django models, and the leak rules."""
