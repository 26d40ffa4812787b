"""SWIM-style membership with Lifeguard's care, independent of any transport."""
