"""Knowledge distillation: a student learns the teacher's softened class distribution.

    loss = (1 - w) * cross_entropy(labels, student) + w * T^2 * KL(softmax(t / T) || softmax(s / T))

(Hinton et al.; T^2 keeps the gradient scale independent of T). In the search the
teacher is the largest child of the same supernet in the same step (in-place
distillation, BigNAS) or the float model it was warm-started from.
"""

from udc.compat import tf


def distillation_loss(labels, student_logits, teacher_logits, weight: float, temperature: float = 1.0):
    """Mean over the batch; `teacher_logits` get no gradient."""
    task = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), student_logits))
    if weight == 0.0:
        return task
    teacher = tf.nn.softmax(tf.stop_gradient(teacher_logits) / temperature)
    log_student = tf.nn.log_softmax(student_logits / temperature)
    kl = tf.reduce_mean(tf.reduce_sum(teacher * (tf.math.log(teacher + 1e-12) - log_student), axis=-1))
    return (1.0 - weight) * task + weight * temperature ** 2 * kl
