"""neurohw's own Lava processes. Lava discovers a process's models by executing every
module in this directory, so it holds only the process and its model."""
