"""The labelled fidelity set: replies judged correct or wrong by a careful reviewer, and how they are graded."""
