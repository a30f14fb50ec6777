"""Domain events published by the accounts context (schemas are the contract; bump the version to change one)."""
