"""The estimators and the learned state they share."""
