"""workflow-event-aggregator: valid CloudEvents from edge clusters to a central one."""

__version__ = "0.1.0"
