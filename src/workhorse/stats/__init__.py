"""Job statistics: what each process counts (enqueues, attempts and their outcomes, run
times) and writes to the store about once a second, so that ``/metrics`` and the
dashboard's throughput show what every process did."""
