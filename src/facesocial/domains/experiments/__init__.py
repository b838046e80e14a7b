"""A/B experiments between two versions of a serving slot: assignment, feedback, statistics, conclusions."""
