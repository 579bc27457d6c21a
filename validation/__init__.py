"""validation: real small-scale torch.distributed runs set beside llmcap's predictions."""
