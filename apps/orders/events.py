"""Domain events published by the orders context (schemas are the contract; bump the version to change one)."""
