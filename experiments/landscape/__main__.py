from experiments.landscape.cli import main
raise SystemExit(main())
