from vidra.cli import main

raise SystemExit(main())
