;; A `wasi:cli/run` service made of two core modules, each with its own linear memory. `run`
;; grows each memory to about 20 MiB: within a 32 MiB limit one memory at a time, over it
;; together. The host must count both memories against the one limit of the instance.
(component
  (core module $grower
    (memory 1)
    (func (export "grow")
      ;; 320 pages of 64 KiB; a refused growth (-1) traps.
      (if (i32.eq (memory.grow (i32.const 320)) (i32.const -1))
        (then unreachable))))
  (core instance $first (instantiate $grower))
  (core instance $second (instantiate $grower))
  (core module $main
    (import "first" "grow" (func $grow-first))
    (import "second" "grow" (func $grow-second))
    (func (export "run") (result i32)
      call $grow-first
      call $grow-second
      ;; result::ok
      i32.const 0))
  (core instance $main
    (instantiate $main
      (with "first" (instance $first))
      (with "second" (instance $second))))
  (func $run (result (result)) (canon lift (core func $main "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance)))
