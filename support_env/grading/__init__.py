"""How work is judged: what the agent did on each ticket, reply grades, ticket and episode grades, and step rewards; pure functions."""
