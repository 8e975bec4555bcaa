"""A simulated province and its counterparts, driving the bus through the real contracts."""
