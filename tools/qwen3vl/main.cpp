#include <cstdio>

int main() {
  std::puts("qwen3vl");
  return 0;
}
