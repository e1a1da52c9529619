"""The wire: what master, workers and peers may say to each other (``protocol`` and its ``checks``),
the remote names files may take (``names``), and how each side proves who it is (``auth``,
``handshake``, ``curve``). Everything a peer sends is checked here before any loop acts on it."""
