"""The public door of the accounts context: the only module other contexts may import."""
