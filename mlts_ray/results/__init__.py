"""The collector: the model's reports as rows, the tables' schemas and the oracle metrics."""
