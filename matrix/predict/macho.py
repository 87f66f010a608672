"""Just enough Mach-O (arm64, 64-bit, thin) to read libtorch_cpu.dylib without a Mac or a disassembler.

Three things: the sections (to tell a C string from code), the symbol table (local symbols are kept in
torch's macOS builds, so ``TORCH_LIBRARY_IMPL_init_aten_MPS_3`` and ``wrapper_MPS_*`` have names), and the
addresses a function builds with ADRP+ADD / ADR: that is how ``m.impl("linalg_svd", ...)`` passes its op
name, so walking an init function in order gives the ops it registers and the kernels next to them.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

MH_MAGIC_64 = 0xFEEDFACF
LC_SEGMENT_64, LC_SYMTAB = 0x19, 0x2


@dataclass(frozen=True)
class Section:
    segment: str
    name: str
    addr: int
    size: int
    offset: int

    def holds(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


class MachO:
    def __init__(self, data: bytes):
        if len(data) < 32 or struct.unpack_from("<I", data, 0)[0] != MH_MAGIC_64:
            raise ValueError("not a thin 64-bit little-endian Mach-O file")
        self.data = data
        self.sections: list[Section] = []
        self._symtab = None
        ncmds = struct.unpack_from("<I", data, 16)[0]
        off = 32
        for _ in range(ncmds):
            cmd, size = struct.unpack_from("<II", data, off)
            if cmd == LC_SEGMENT_64:
                nsects = struct.unpack_from("<I", data, off + 64)[0]
                for i in range(nsects):
                    s = off + 72 + 80 * i
                    addr, sz, foff = struct.unpack_from("<QQI", data, s + 32)
                    self.sections.append(Section(_cstr(data[s + 16:s + 32]), _cstr(data[s:s + 16]), addr, sz, foff))
            elif cmd == LC_SYMTAB:
                self._symtab = struct.unpack_from("<IIII", data, off + 8)
            off += size
        self._symbols: list[tuple[int, str]] | None = None

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def symbols(self) -> list[tuple[int, str]]:
        """(address, name) of every symbol defined in a section, sorted by address."""
        if self._symbols is None:
            out = []
            if self._symtab:
                symoff, nsyms, stroff, _ = self._symtab
                data = self.data
                for i in range(nsyms):
                    strx, ntype, _, _, value = struct.unpack_from("<IBBHQ", data, symoff + 16 * i)
                    if ntype & 0xE0 or (ntype & 0x0E) != 0x0E:  # debug entries; undefined/absolute symbols
                        continue
                    end = data.index(b"\0", stroff + strx)
                    out.append((value, data[stroff + strx:end].decode("latin1")))
            out.sort()
            self._symbols = out
        return self._symbols

    def file_offset(self, addr: int) -> int | None:
        for s in self.sections:
            if s.holds(addr) and s.offset:
                return s.offset + addr - s.addr
        return None

    def c_string(self, addr: int) -> str:
        off = self.file_offset(addr)
        end = self.data.index(b"\0", off)
        return self.data[off:end].decode("utf-8", "replace")

    def c_strings(self) -> list[str]:
        """Every NUL-terminated string of __TEXT,__cstring (the literals of the C++/ObjC code)."""
        sec = self.section("__cstring")
        if sec is None:
            return []
        raw = self.data[sec.offset:sec.offset + sec.size]
        return [s.decode("utf-8", "replace") for s in raw.split(b"\0") if s]

    def function_refs(self, name_part: str) -> dict[str, list[tuple[str, str]]]:
        """{function symbol: [(kind, value)]} for every function whose name contains ``name_part``.

        kind: "str" (a C string it takes the address of), "fn" (a function whose address it takes),
        "call" (a BL target). Functions end where the next symbol starts.
        """
        syms = self.symbols()
        addrs = [a for a, _ in syms]
        by_addr: dict[int, str] = {}
        for a, n in syms:
            by_addr.setdefault(a, n)
        out = {}
        for addr, name in syms:
            if name_part in name and ".cold." not in name:
                i = bisect.bisect_right(addrs, addr)
                end = addrs[i] if i < len(addrs) else addr + 4
                out[name] = self._refs(addr, end, by_addr)
        return out

    def _refs(self, start: int, end: int, by_addr: dict[int, str]) -> list[tuple[str, str]]:
        cstring, text = self.section("__cstring"), self.section("__text")
        base = self.file_offset(start)
        regs: dict[int, int] = {}
        out = []

        def note(addr):
            if cstring and cstring.holds(addr):
                out.append(("str", self.c_string(addr)))
            elif text and text.holds(addr):
                out.append(("fn", by_addr.get(addr, hex(addr))))

        for i in range((end - start) // 4):
            pc = start + 4 * i
            ins = struct.unpack_from("<I", self.data, base + 4 * i)[0]
            if ins & 0x1F000000 == 0x10000000:  # ADR / ADRP
                imm = ((ins >> 5) & 0x7FFFF) << 2 | (ins >> 29) & 3
                imm -= (imm & 0x100000) << 1
                if ins & 0x80000000:  # ADRP: a 4 KB page, completed by the ADD that follows
                    regs[ins & 31] = (pc & ~0xFFF) + (imm << 12)
                else:
                    regs.pop(ins & 31, None)
                    note(pc + imm)
            elif ins & 0xFF800000 == 0x91000000:  # ADD Xd, Xn, #imm
                rd, rn, imm = ins & 31, (ins >> 5) & 31, (ins >> 10) & 0xFFF
                if rn in regs:
                    addr = regs[rn] + (imm << 12 if ins & 0x400000 else imm)
                    regs[rd] = addr
                    note(addr)
                else:
                    regs.pop(rd, None)
            elif ins & 0xFC000000 == 0x94000000:  # BL
                imm = ins & 0x3FFFFFF
                imm -= (imm & 0x2000000) << 1
                out.append(("call", by_addr.get(pc + 4 * imm, hex(pc + 4 * imm))))
        return out


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin1")
