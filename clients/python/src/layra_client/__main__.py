from layra_client.cli import main

raise SystemExit(main())
