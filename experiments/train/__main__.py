from experiments.train.cli import main
raise SystemExit(main())
