"""Domain events published by the payments context (schemas are the contract; bump the version to change one)."""
