"""The company: its knowledge base of policy articles, its account records and the operations on them, and their data files."""
