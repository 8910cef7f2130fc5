// Text built in a caller-owned fixed buffer and written with write(2): the
// fatal-signal report's only way to format. Every member is
// async-signal-safe: no allocation, no locale, no stdio, no lock.
#pragma once

#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace gmr {

class SafeText {
 public:
  SafeText(char* buf, size_t cap) : buf_(buf), cap_(cap) {}

  SafeText& Str(const char* s) {
    while (s && *s) Char(*s++);
    return *this;
  }
  SafeText& Str(const char* s, size_t n) {
    for (size_t i = 0; s && i < n && s[i]; i++) Char(s[i]);
    return *this;
  }
  SafeText& Char(char c) {
    if (len_ < cap_) buf_[len_++] = c;
    else truncated_ = true;
    return *this;
  }
  SafeText& Dec(int64_t v) {
    if (v < 0) {
      Char('-');
      return Dec(uint64_t(-(v + 1)) + 1);
    }
    return Dec(uint64_t(v));
  }
  SafeText& Dec(uint64_t v, int min_width = 0, char pad = '0') {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    for (int i = n; i < min_width; i++) Char(pad);
    while (n) Char(tmp[--n]);
    return *this;
  }
  SafeText& Dec(int v) { return Dec(int64_t(v)); }
  // 0x-prefixed; `digits` zero-padded (16 for an address), 0 for as few as needed.
  SafeText& Hex(uint64_t v, int digits = 0) {
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    Str("0x");
    for (int i = n; i < digits; i++) Char('0');
    while (n) Char(tmp[--n]);
    return *this;
  }
  // Left-aligned in `width` columns.
  SafeText& Padded(const char* s, size_t width) {
    size_t start = len_;
    Str(s);
    while (len_ - start < width) Char(' ');
    return *this;
  }
  // `text` centred in `width` as the report's headings do (an odd space to the right).
  SafeText& Centred(const char* text, size_t width) {
    size_t n = 0;
    while (text[n]) n++;
    size_t pad = width > n + 2 ? width - n : 2;
    for (size_t i = 0; i < pad / 2; i++) Char(' ');
    Str(text);
    for (size_t i = 0; i < pad - pad / 2; i++) Char(' ');
    return *this;
  }

  size_t size() const { return len_; }
  const char* data() const { return buf_; }
  bool truncated() const { return truncated_; }
  void Clear() {
    len_ = 0;
    truncated_ = false;
  }

  // Writes everything, retrying short writes and EINTR. False on error.
  bool WriteTo(int fd) const {
    size_t off = 0;
    while (off < len_) {
      ssize_t n = write(fd, buf_ + off, len_ - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += size_t(n);
    }
    return true;
  }

 private:
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool truncated_ = false;
};

}  // namespace gmr
