"""Domain events published by the inventory context (schemas are the contract; bump the version to change one)."""
