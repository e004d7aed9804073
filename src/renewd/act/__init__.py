"""Acting on a plan: the run, the outbox executor, billing and provisioning backends, alerts.
May import any stage below the service: plan, delivery, state, policy, snapshot, config, core."""
