"""The order event bus's delivery side: every stored event to each subscriber, in order, at least once."""
