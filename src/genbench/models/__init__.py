"""Pure nn.Modules and losses: no disk, no tracking, no params files."""
