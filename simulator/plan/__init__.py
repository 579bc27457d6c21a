"""The step plan: what one rank of a pipeline stage runs, written once for both engines.

`layer` holds one transformer layer's plan (kernel order, the tensor- and context-parallel
collectives with the kernel each may overlap, message sizes); `rules` the overlap rules and
the closed form's named approximations of the simulated schedule; `shard` ZeRO's sharding.
The SimPy engine (`simulator.des.work`) turns the plan into instructions; the closed form
(`analysis.closed_form`) evaluates the same plan vectorised over layouts.
"""
