from gmbench.cli import main

raise SystemExit(main())
