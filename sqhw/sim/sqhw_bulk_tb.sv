// Bulk-stimulus testbench of sqhw_top: no Python in the per-cycle loop.
//
// Built with `verilator --binary` by sqhw/sim/bulk.py (parameters set with -G per
// configuration). Stimulus comes from $readmemh files that the Python side writes; results
// are written with $fwrite and compared with sqhw.golden.hw_matmul in Python afterwards.
//
// Plusargs (all required unless a default is given):
//   +wfile=<path> +nw=<n>   weight beats, one hex line each: {tlast, tdata}
//   +afile=<path> +na=<n>   activation beats, one hex line each: {tuser, tlast, tdata};
//   +na_file=<n>            the file holds na_file lines (default na), replayed until na
//                           beats are sent (a job's tiles all stream the same M tokens)
//   +rfile=<path> +nr=<n>   result file to write, expected number of result beats
//   +seed=<n>               seed of the three xorshift LFSRs (default 1)
//   +p_w=<n> +p_a=<n> +p_r=<n>
//                           idle probability per cycle, in 1/65536 units (default 0): a
//                           source presents no new beat, the sink holds tready low
//   +timeout=<n>            cycles after reset before giving up (default 10_000_000)
//   +drain=<n>              cycles to keep watching for extra results (default 64)
//
// Sources are AXI4-Stream compliant: tvalid, once high, stays high with stable data until
// the beat moves; the stall draw only decides whether the next beat is presented.
// Summary line on stdout (parsed by bulk.py):
//   SQHW_BULK done=<0|1> timeout=<0|1> cycles=<n> act_beats=<n> w_beats=<n> results=<n>
//             extra=<n> status=<hex> err_beats=<n> sim_cycles=<n>
// `cycles` runs from the cycle of the first weight beat to the cycle of the last expected
// result, both included; `act_beats` counts accepted activation beats in that window.
`default_nettype none

module sqhw_bulk_tb #(
    parameter int WW = 96,        // s_axis_w_tdata width
    parameter int AW = 128,       // s_axis_a_tdata width
    parameter int RW = 512,       // m_axis_r_tdata width
    parameter int DEPTH_W = 32768,
    parameter int DEPTH_A = 32768
);
    logic clk = 1'b0;
    always #5 clk = ~clk;
    // Synchronous reset for the first 4 cycles (the stimulus is loaded at time 0).
    logic [2:0] rst_cnt = 3'd0;
    wire rst = rst_cnt != 3'd4;
    always @(posedge clk) if (rst) rst_cnt <= rst_cnt + 3'd1;

    // -- plusargs ---------------------------------------------------------------------
    string wfile, afile, rfile;
    int unsigned nw, na, nr, na_file;
    int unsigned seed = 1;
    int unsigned p_w = 0, p_a = 0, p_r = 0;
    longint unsigned timeout = 64'd10_000_000;
    int unsigned drain = 64;
    int fd;

    logic [WW:0]   wmem [DEPTH_W];
    logic [AW+1:0] amem [DEPTH_A];

    initial begin
        if (!$value$plusargs("wfile=%s", wfile) || !$value$plusargs("afile=%s", afile)
                || !$value$plusargs("rfile=%s", rfile) || !$value$plusargs("nw=%d", nw)
                || !$value$plusargs("na=%d", na) || !$value$plusargs("nr=%d", nr)) begin
            $display("SQHW_BULK error: missing plusarg (wfile afile rfile nw na nr)");
            $fatal(1);
        end
        if (!$value$plusargs("na_file=%d", na_file)) na_file = na;
        if (nw > DEPTH_W || na_file > DEPTH_A || na_file == 0 || nr == 0) begin
            $display("SQHW_BULK error: need nw %0d <= %0d, 0 < na_file %0d <= %0d, nr %0d > 0",
                     nw, DEPTH_W, na_file, DEPTH_A, nr);
            $fatal(1);
        end
        void'($value$plusargs("seed=%d", seed));
        void'($value$plusargs("p_w=%d", p_w));
        void'($value$plusargs("p_a=%d", p_a));
        void'($value$plusargs("p_r=%d", p_r));
        void'($value$plusargs("timeout=%d", timeout));
        void'($value$plusargs("drain=%d", drain));
        if (nw > 0) $readmemh(wfile, wmem, 0, nw - 1);
        $readmemh(afile, amem, 0, na_file - 1);
        fd = $fopen(rfile, "w");
        if (fd == 0) begin
            $display("SQHW_BULK error: cannot open %s", rfile);
            $fatal(1);
        end
    end

    // -- DUT --------------------------------------------------------------------------
    logic [WW-1:0] w_tdata;
    logic          w_tvalid, w_tready, w_tlast;
    logic [AW-1:0] a_tdata;
    logic          a_tvalid, a_tready, a_tlast, a_tuser;
    logic [RW-1:0] r_tdata;
    logic          r_tvalid, r_tready, r_tlast, r_tuser;
    logic [3:0]    status;

    sqhw_top dut (
        .clk(clk), .rst(rst),
        .s_axis_w_tdata(w_tdata), .s_axis_w_tvalid(w_tvalid), .s_axis_w_tready(w_tready),
        .s_axis_w_tlast(w_tlast),
        .s_axis_a_tdata(a_tdata), .s_axis_a_tvalid(a_tvalid), .s_axis_a_tready(a_tready),
        .s_axis_a_tlast(a_tlast), .s_axis_a_tuser(a_tuser),
        .m_axis_r_tdata(r_tdata), .m_axis_r_tvalid(r_tvalid), .m_axis_r_tready(r_tready),
        .m_axis_r_tlast(r_tlast), .m_axis_r_tuser(r_tuser),
        .status(status)
    );

    // -- xorshift32 LFSRs: one per stream, idle when the low 16 bits are below p_* --------
    function automatic logic [31:0] xorshift(input logic [31:0] x);
        logic [31:0] y;
        y = x ^ (x << 13);
        y = y ^ (y >> 17);
        return y ^ (y << 5);
    endfunction

    logic [31:0] lfsr_w, lfsr_a, lfsr_r;
    wire stall_w = {16'd0, lfsr_w[15:0]} < p_w;
    wire stall_a = {16'd0, lfsr_a[15:0]} < p_a;
    wire stall_r = {16'd0, lfsr_r[15:0]} < p_r;

    // -- sources ----------------------------------------------------------------------
    int unsigned wptr, aptr, aidx;   // aidx: aptr modulo na_file
    wire w_fire = w_tvalid && w_tready;
    wire a_fire = a_tvalid && a_tready;
    wire r_fire = r_tvalid && r_tready;
    wire [31:0] wnext = w_fire ? wptr + 1 : wptr;
    wire [31:0] anext = a_fire ? aptr + 1 : aptr;
    assign {w_tlast, w_tdata} = wmem[wptr[$clog2(DEPTH_W)-1:0]];
    assign {a_tuser, a_tlast, a_tdata} = amem[aidx[$clog2(DEPTH_A)-1:0]];

    // -- counters and sink --------------------------------------------------------------
    longint unsigned sim_cycles = 0, cycles = 0, act_beats = 0, w_beats = 0;
    int unsigned results = 0, extra = 0, err_beats = 0, drained = 0;
    logic started = 1'b0, done = 1'b0, r_ready_q = 1'b0;
    assign r_tready = done ? 1'b1 : r_ready_q;
    wire counting = (started || w_fire) && !done;

    task automatic summary(input logic timed_out);
        $write("SQHW_BULK done=%0d timeout=%0d cycles=%0d act_beats=%0d w_beats=%0d ",
               done, timed_out, cycles, act_beats, w_beats);
        $write("results=%0d extra=%0d status=%h err_beats=%0d sim_cycles=%0d\n",
               results, extra, status, err_beats, sim_cycles);
        $fclose(fd);
    endtask

    always @(posedge clk) begin
        if (rst) begin
            wptr <= 0; aptr <= 0; aidx <= 0;
            w_tvalid <= 1'b0; a_tvalid <= 1'b0; r_ready_q <= 1'b0;
            lfsr_w <= (seed ^ 32'h9E3779B9) | 32'd1;
            lfsr_a <= (seed ^ 32'h7F4A7C15) | 32'd2;
            lfsr_r <= (seed ^ 32'h94D049BB) | 32'd4;
        end else begin
            sim_cycles <= sim_cycles + 1;
            lfsr_w <= xorshift(lfsr_w);
            lfsr_a <= xorshift(lfsr_a);
            lfsr_r <= xorshift(lfsr_r);
            wptr <= wnext;
            aptr <= anext;
            if (a_fire) aidx <= aidx + 1 == na_file ? 0 : aidx + 1;
            if (!w_tvalid || w_tready) w_tvalid <= (wnext < nw) && !stall_w;
            if (!a_tvalid || a_tready) a_tvalid <= (anext < na) && !stall_a;
            r_ready_q <= !stall_r;
            if (w_fire) begin
                started <= 1'b1;
                w_beats <= w_beats + 1;
            end
            if (counting) cycles <= cycles + 1;
            if (a_fire && counting) act_beats <= act_beats + 1;
            if (r_fire) begin
                $fwrite(fd, "%0d %0d %0d %h\n", sim_cycles, r_tuser, r_tlast, r_tdata);
                if (r_tuser) err_beats <= err_beats + 1;
                if (done) extra <= extra + 1;
                else begin
                    results <= results + 1;
                    if (results + 1 == nr) done <= 1'b1;
                end
            end
            if (done) begin
                drained <= drained + 1;
                if (drained >= drain) begin
                    summary(1'b0);
                    $finish;
                end
            end else if (sim_cycles >= timeout) begin
                summary(1'b1);
                $finish;
            end
        end
    end
endmodule

`default_nettype wire
