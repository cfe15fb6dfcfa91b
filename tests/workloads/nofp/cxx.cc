// SPDX-License-Identifier: Apache-2.0
// Built with -O2 -fomit-frame-pointer: std::sort with a lambda, virtual calls,
// and exceptions thrown and caught, all through libstdc++. Runs argv[1] seconds.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

namespace work {

volatile long sink;

struct Shape {
	virtual ~Shape() = default;
	virtual long area(long k) const = 0;
};

struct Square : Shape {
	long area(long k) const override
	{
		long s = 0;
		for (long i = 0; i < 2000; i++)
			s += (i * k) % 7;
		return s;
	}
};

struct Tri : Shape {
	long area(long k) const override
	{
		long s = 0;
		for (long i = 0; i < 2000; i++)
			s += (i + k) % 5;
		return s;
	}
};

__attribute__((noinline)) void sort_step(std::vector<int> &v)
{
	for (size_t i = 0; i < v.size(); i++)
		v[i] = static_cast<int>((i * 2654435761u) % 100003u);
	std::sort(v.begin(), v.end(), [](int a, int b) { return (a % 1000) < (b % 1000); });
}

__attribute__((noinline)) void virtual_step(const std::vector<std::unique_ptr<Shape>> &shapes)
{
	for (long k = 0; k < 200; k++)
		for (const auto &s : shapes)
			sink += s->area(k);
}

__attribute__((noinline)) void thrower(int i)
{
	if (i % 2)
		throw std::runtime_error("odd");
	sink += i;
}

__attribute__((noinline)) void exception_step()
{
	for (int i = 0; i < 2000; i++) {
		try {
			thrower(i);
		} catch (const std::exception &e) {
			sink += e.what()[0];
		}
	}
}

} // namespace work

int main(int argc, char **argv)
{
	double secs = argc > 1 ? std::atof(argv[1]) : 3;
	std::vector<int> v(50000);
	std::vector<std::unique_ptr<work::Shape>> shapes;
	auto start = std::chrono::steady_clock::now();

	for (int i = 0; i < 8; i++) {
		if (i % 2)
			shapes.emplace_back(new work::Square);
		else
			shapes.emplace_back(new work::Tri);
	}
	while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < secs) {
		work::sort_step(v);
		work::virtual_step(shapes);
		work::exception_step();
	}
	return 0;
}
