"""What an episode is made of: the task catalogue, the seeded generator, record-backed cases, ticket prose and the simulated customer."""
