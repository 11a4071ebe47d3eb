"""Tables -> figures and the reproduction table: drawing (``plots``), the figure stages (``figures``)
and the comparison with the paper's numbers (``reproduction``)."""
