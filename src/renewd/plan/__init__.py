"""Planning: the policy evaluated over mailboxes, a day's plan in parts, simulation, guards; pure.
May import snapshot, policy, config and the core; it reads the snapshot and spills, nothing more."""
