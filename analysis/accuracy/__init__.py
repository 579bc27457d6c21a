"""Accuracy of llmcap's predictions against published training runs."""
