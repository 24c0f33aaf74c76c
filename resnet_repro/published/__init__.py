"""Other reproductions' trained nets: `checkpoints` turns their files into our model.pt layout
(with the inputs their authors used), `table` sets their reported errors beside ours.

Above the nets and the tables: nothing below imports it."""
