"""The traffic simulator (issue 12, first part): a discrete-event model of replicas with worker
pools, bounded wait queues and client timeouts behind a balancer. Pure: no I/O, no clock,
deterministic under a seed."""
