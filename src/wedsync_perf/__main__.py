from wedsync_perf.cli import main

main()
