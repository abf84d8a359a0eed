sqhw_top.v
