// The simulated board: the Verilator model of sqhw_link_top (the core behind the UART host
// link, as a board top holds it, without the PLL) with its UART pins tied to this
// process's standard input and output.
//
// Every byte read from stdin is sent on uart_rx as an 8N1 frame (start bit, 8 data bits
// LSB first, stop bit), SQHW_DIVISOR clock cycles per bit; every 8N1 frame the model sends
// on uart_tx is sampled mid-bit and written to stdout as one byte. The host driver
// (python -m sqhw.host --port sim, sqhw.sim.board) reads and writes those pipes as it
// would a serial port, so every frame crosses the real UART and link gateware.
//
// Time runs while anything is on either line; after SQHW_QUIET cycles with both lines idle
// and no byte waiting, the model waits for the host instead of spinning (the link's
// truncation timeout and the core's results have long finished by then). End of stdin
// ends the run once the bytes before it are sent.
//
// Compiled by sqhw.sim.board.build_board with -DSQHW_DIVISOR=<n> -DSQHW_QUIET=<cycles>.

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include <poll.h>
#include <unistd.h>

#include "verilated.h"
#include "Vsqhw_link_top.h"

#ifndef SQHW_DIVISOR
#error "compile with -DSQHW_DIVISOR=<clock cycles per UART bit>"
#endif
#ifndef SQHW_QUIET
#error "compile with -DSQHW_QUIET=<idle cycles before waiting for the host>"
#endif

static bool write_all(const std::string& data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = write(1, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;          // the host has gone
        done += size_t(n);
    }
    return true;
}

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);
    const int D = SQHW_DIVISOR;
    const uint64_t QUIET = SQHW_QUIET;
    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    auto top = std::make_unique<Vsqhw_link_top>(ctx.get(), "board");

    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        ctx->timeInc(1);
    };
    // Power-on reset, as the board top's reset register gives it.
    top->uart_rx = 1;
    top->rst = 1;
    for (int i = 0; i < 8; ++i) tick();
    top->rst = 0;
    for (int i = 0; i < 8; ++i) tick();

    std::string in;            // host -> board bytes not yet on uart_rx
    size_t in_pos = 0;
    std::string out;           // board -> host bytes not yet written
    int tx_bit = -1, tx_cnt = 0;
    unsigned tx_frame = 0;     // {stop, data[7:0], start}, sent LSB first
    int mon = 0, mon_cnt = 0, mon_bit = 0, prev = 1;
    unsigned mon_byte = 0;
    uint64_t quiet = 0, framing_errors = 0;
    bool eof = false;

    for (;;) {
        if (!out.empty()) {
            if (!write_all(out)) break;
            out.clear();
        }
        const bool line_idle = tx_bit < 0 && mon == 0;
        if (!eof && in_pos == in.size()) {
            struct pollfd p = {0, POLLIN, 0};
            int wait_ms = (line_idle && quiet >= QUIET) ? -1 : 0;
            int r = poll(&p, 1, wait_ms);
            if (r > 0) {
                char buf[4096];
                ssize_t n = read(0, buf, sizeof buf);
                if (n > 0) {
                    in.assign(buf, size_t(n));
                    in_pos = 0;
                    quiet = 0;
                } else if (n == 0 || errno != EINTR) {
                    eof = true;
                }
            } else if (r < 0 && errno != EINTR) {
                eof = true;
            }
        }
        if (eof && in_pos == in.size() && tx_bit < 0) break;

        for (int i = 0; i < 10 * D; ++i) {
            if (tx_bit < 0 && in_pos < in.size()) {
                tx_frame = (1u << 9) | (unsigned(uint8_t(in[in_pos++])) << 1);
                tx_bit = 0;
                tx_cnt = D;
            }
            top->uart_rx = tx_bit < 0 ? 1 : (tx_frame >> tx_bit) & 1;
            tick();
            if (tx_bit >= 0 && --tx_cnt == 0) {
                tx_cnt = D;
                if (++tx_bit == 10) tx_bit = -1;
            }
            const int line = top->uart_tx;
            switch (mon) {
            case 0:                                  // idle: wait for a falling edge
                if (prev && !line) {
                    mon = 1;
                    mon_cnt = D / 2;
                }
                break;
            case 1:                                  // mid start bit
                if (--mon_cnt == 0) {
                    if (line) {
                        mon = 0;                     // a glitch, not a start bit
                    } else {
                        mon = 2;
                        mon_bit = 0;
                        mon_byte = 0;
                        mon_cnt = D;
                    }
                }
                break;
            case 2:                                  // data bits, mid-bit
                if (--mon_cnt == 0) {
                    mon_byte |= unsigned(line) << mon_bit;
                    mon_cnt = D;
                    if (++mon_bit == 8) mon = 3;
                }
                break;
            default:                                 // stop bit
                if (--mon_cnt == 0) {
                    if (line)
                        out.push_back(char(mon_byte));
                    else
                        ++framing_errors;
                    mon = 0;
                }
                break;
            }
            prev = line;
            if (tx_bit < 0 && mon == 0 && in_pos == in.size())
                ++quiet;
            else
                quiet = 0;
        }
    }
    if (!out.empty()) write_all(out);
    top->final();
    if (framing_errors)
        std::fprintf(stderr, "sqhw board sim: %llu framing errors on uart_tx\n",
                     (unsigned long long)framing_errors);
    return 0;
}
