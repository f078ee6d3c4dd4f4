"""The harness: sync-correct timing, one job (train, time, sample, score), suites of jobs."""
