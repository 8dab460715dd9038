"""Turning ratings into factors: config, loop, trainers, schedules, backends."""
