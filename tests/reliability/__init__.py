"""Reliability under faults and load (issue 7): each module is one scenario, with its figures."""
